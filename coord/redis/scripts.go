package redis

import (
	"context"
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"strings"

	"github.com/redis/rueidis"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// script is one embedded Lua script. It runs as EVALSHA, so that it can go
// into a pipeline with other commands; a NOSCRIPT reply (a restarted or new
// Redis node) is retried through rueidis.Lua, which falls back to EVAL and
// so loads the script on that node.
type script struct {
	name string
	src  string
	sha  string
	lua  *rueidis.Lua
}

func loadScript(name string) *script {
	s := readScript(name)
	scripts = append(scripts, s)
	return s
}

func readScript(name string) *script {
	body, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic("coord/redis: missing embedded script " + name) // a build defect
	}
	src := string(body)
	if strings.Contains(src, "now_ms()") {
		prelude, _ := luaFiles.ReadFile("lua/now.lua")
		src = string(prelude) + src
	}
	sum := sha1.Sum([]byte(src))
	return &script{name: name, src: src, sha: hex.EncodeToString(sum[:]), lua: rueidis.NewLuaScript(src)}
}

var (
	scripts []*script // every script, for loadScripts

	scriptPresenceJoin       = loadScript("presence_join")
	scriptPresenceRefresh    = loadScript("presence_refresh")
	scriptPresenceLeave      = loadScript("presence_leave")
	scriptPresenceRead       = loadScript("presence_read")
	scriptPresenceStateSet   = loadScript("presence_state_set")
	scriptPresenceStateClear = loadScript("presence_state_clear")
	scriptPresenceSweep      = loadScript("presence_sweep")
	scriptRecordSet          = loadScript("record_set")
	scriptHistoryPublish     = loadScript("history_publish")
	scriptConnRegister       = loadScript("conn_register")
	scriptConnUnregister     = loadScript("conn_unregister")
	scriptConnRemove         = loadScript("conn_remove")
	scriptRoomAdd            = loadScript("room_add")
	scriptRoomAddMany        = loadScript("room_add_many")
	scriptPresenceJoinMany   = loadScript("presence_join_many")
	scriptRoomRemove         = loadScript("room_remove")
	scriptRoomLeaveAll       = loadScript("room_leave_all")
	scriptRoomClear          = loadScript("room_clear")
	scriptMetaCAS            = loadScript("meta_cas")
)

// rop is one command of a round trip: a plain command, or a script call
// (kept as keys and args so that a NOSCRIPT reply can be retried).
type rop struct {
	cmd  rueidis.Completed
	s    *script
	keys []string
	args []string
}

func (c *Coordinator) call(s *script, keys []string, args ...string) rop {
	b := c.client.B().Evalsha().Sha1(s.sha).Numkeys(int64(len(keys))).Key(keys...).Arg(args...)
	return rop{cmd: b.Build(), s: s, keys: keys, args: args}
}

func cmdOp(cmd rueidis.Completed) rop { return rop{cmd: cmd} }

func isNoScript(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	return ok && re.IsNoScript()
}

// loadScripts loads every script on every node (SCRIPT LOAD, one pipeline
// per node), so that a burst of first calls, at start or after a Redis
// restart emptied its script cache, does not each pay a NOSCRIPT and an
// EVAL.
func (c *Coordinator) loadScripts(ctx context.Context) error {
	clients := []rueidis.Client{c.client}
	if c.cluster {
		clients = clients[:0]
		for _, n := range c.client.Nodes() {
			clients = append(clients, n)
		}
	}
	var first error
	for _, cl := range clients {
		cmds := make([]rueidis.Completed, len(scripts))
		for i, s := range scripts {
			cmds[i] = cl.B().ScriptLoad().Script(s.src).Build()
		}
		c.st.roundTrip(len(cmds))
		for _, r := range cl.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// reloadScripts runs loadScripts in the background after a NOSCRIPT, once
// at a time.
func (c *Coordinator) reloadScripts() {
	if !c.reloading.CompareAndSwap(false, true) {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.reloading.Store(false)
		ctx, cancel := context.WithTimeout(c.bg, c.opts.WriteTimeout)
		defer cancel()
		c.st.scriptLoads.Add(1)
		if err := c.loadScripts(ctx); err != nil && !c.closed.Load() {
			c.opts.Logger.Warn("coord/redis: could not load scripts (EVAL falls back)", "err", err)
		}
	}()
}
