package redis

import (
	"crypto/sha1"
	"embed"
	"encoding/hex"

	"github.com/redis/rueidis"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// script is one embedded Lua script, run as EVALSHA so that it can share a
// pipeline; lua falls back to EVAL after a NOSCRIPT (a restarted or new
// Redis node).
type script struct {
	src string
	sha string
	lua *rueidis.Lua
}

func loadScript(name string, lib bool) *script {
	body, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic("streams/store/redis: missing embedded script " + name) // a build defect
	}
	src := string(body)
	if lib {
		prelude, _ := luaFiles.ReadFile("lua/lib.lua")
		src = string(prelude) + src
	}
	sum := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(sum[:]), lua: rueidis.NewLuaScript(src)}
}

var (
	scriptAppend      = loadScript("append", true)
	scriptRead        = loadScript("read", true)
	scriptAck         = loadScript("ack", false)
	scriptSnapshotSet = loadScript("snapshot_set", false)
	scriptPrune       = loadScript("prune", true)

	scripts = []*script{scriptAppend, scriptRead, scriptAck, scriptSnapshotSet, scriptPrune}
)
