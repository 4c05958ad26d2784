#!/usr/bin/env bash
# alloctests.sh: the `go test` arguments of `make test`'s second pass, the
# allocation tests that the race detector hides. Allocation counts mean
# nothing under -race, so such tests live in files built only without it
# (a `//go:build` line with `!race`) or skip themselves under it; CI's
# `go test -race` never runs them. They are found, not listed, so a new one
# is not missed: every test function in a `!race` file, and every test
# function that calls testing.AllocsPerRun itself.
#
# Prints `-run ^(TestA|TestB|...)$ ./pkg ./pkg2`; a name found in one
# package also runs in the others that have it, which is harmless. Exits 1
# if it finds nothing, rather than let an empty -run select every test.
set -euo pipefail
cd "$(dirname "$0")/../.."
found=$(grep -rl --include='*_test.go' --exclude-dir=third_party -e 'AllocsPerRun' -e '^//go:build.*!race' . |
	sort | while read -r f; do
		awk -v dir="$(dirname "$f")" '
			/^\/\/go:build/ && /!race/ { all = 1 }
			/^func Test[A-Za-z0-9_]*\(/ {
				match($0, /Test[A-Za-z0-9_]*/); name = substr($0, RSTART, RLENGTH)
				if (all) { print dir, name; name = "" }
				next
			}
			/^}/ { name = "" }
			/AllocsPerRun/ && name != "" { print dir, name; name = "" }
		' "$f"
	done)
if [ -z "$found" ]; then
	echo "alloctests.sh: no allocation tests found" >&2
	exit 1
fi
names=$(echo "$found" | awk '{print $2}' | sort -u | paste -sd'|' -)
dirs=$(echo "$found" | awk '{print $1}' | sort -u | paste -sd' ' -)
echo "-run ^($names)\$ $dirs"
