// Regenerates compare.json with fast-json-patch's compare (npm
// fast-json-patch@3.1.1), the patches Mesh sends:
//
//	JSONPATCH_WRITE_PAIRS=/tmp/pairs.json go test -run TestWriteCompareCases .
//	NODE_PATH=<dir with node_modules> node testdata/compare.js /tmp/pairs.json > testdata/compare.json
const { compare } = require("fast-json-patch");
const fs = require("fs");
const pairs = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const extra = [
  [{ b: 1, 2: 1, a: 1, 1: 1 }, {}],
  [{ "01": 1, 4294967295: 1, 10: 1, 9: 1 }, {}],
  [{ "a/b": 1, "m~n": 2 }, { "a/b": 2 }],
  [{ a: { b: 1, c: [1, 2] } }, { a: { b: 2, c: [1] } }],
  [[1, 2, 3], [0, 2]],
  [{ a: [1] }, { a: { 0: 1 } }],
];
const out = pairs.map((p) => ({ old: p.old, new: p.new, patch: compare(p.old, p.new) }));
for (const [o, n] of extra) out.push({ old: o, new: n, patch: compare(o, n) });
process.stdout.write("[\n" + out.map((c) => JSON.stringify(c)).join(",\n") + "\n]\n");
