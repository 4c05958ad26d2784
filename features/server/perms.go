package server

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/meshfast/meshfast/features/mesh"
)

// Permissions are what a connection's token (its "allow" claim) or the
// connect proxy's answer (its "allow" member) lets it use, on top of the
// exposures: each list, when present, holds regular expressions (RE2,
// matched anywhere in the name, as exposures are) of the names the
// connection may use for that action; a name no pattern matches is
// refused, as if its exposure's guard said no. A list left out restricts
// nothing; an empty list allows nothing.
//
//	{"channels": ["^chat:"], "rooms": ["^chat:"], "records": ["^profile:42$"],
//	 "write_records": ["^topic:"], "presence": ["^chat:"]}
//
// The checks are the exposures' guards (Node.guard), so they apply to the
// exposures of the configuration; a client still needs an exposure, and
// rooms, which Mesh leaves open, are checked whether or not they are
// exposed.
type Permissions struct {
	Channels     []*regexp.Regexp // mesh/subscribe-channel
	Rooms        []*regexp.Regexp // mesh/join-room
	Records      []*regexp.Regexp // mesh/subscribe-record of a read-only record
	WriteRecords []*regexp.Regexp // mesh/publish-record-update
	Presence     []*regexp.Regexp // mesh/subscribe-presence and presence states

	// which lists were given
	hasChannels, hasRooms, hasRecords, hasWriteRecords, hasPresence bool
}

// Bounds on a permissions object, which is compiled for each connection
// (on the event loop, for a token): a token's author is trusted, but a
// mistake should not cost every connect a large regexp compile.
const (
	maxPermPatterns  = 64
	maxPermPatternSz = 256
)

// permissionsJSON is the wire shape of Permissions.
type permissionsJSON struct {
	Channels     *[]string `json:"channels"`
	Rooms        *[]string `json:"rooms"`
	Records      *[]string `json:"records"`
	WriteRecords *[]string `json:"write_records"`
	Presence     *[]string `json:"presence"`
}

// parsePermissions compiles raw (a JSON object as above); nil or null
// gives nil: no restriction.
func parsePermissions(raw json.RawMessage) (*Permissions, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var pj permissionsJSON
	if err := json.Unmarshal(raw, &pj); err != nil {
		return nil, fmt.Errorf("allow: %w", err)
	}
	p := &Permissions{}
	n := 0
	for _, l := range []struct {
		name string
		src  *[]string
		dst  *[]*regexp.Regexp
		has  *bool
	}{
		{"channels", pj.Channels, &p.Channels, &p.hasChannels},
		{"rooms", pj.Rooms, &p.Rooms, &p.hasRooms},
		{"records", pj.Records, &p.Records, &p.hasRecords},
		{"write_records", pj.WriteRecords, &p.WriteRecords, &p.hasWriteRecords},
		{"presence", pj.Presence, &p.Presence, &p.hasPresence},
	} {
		if l.src == nil {
			continue
		}
		*l.has = true
		for _, s := range *l.src {
			if n++; n > maxPermPatterns {
				return nil, fmt.Errorf("allow: more than %d patterns", maxPermPatterns)
			}
			if len(s) > maxPermPatternSz {
				return nil, fmt.Errorf("allow.%s: a pattern over %d bytes", l.name, maxPermPatternSz)
			}
			re, err := regexp.Compile(s)
			if err != nil {
				return nil, fmt.Errorf("allow.%s: %w", l.name, err)
			}
			*l.dst = append(*l.dst, re)
		}
	}
	return p, nil
}

// permKind is an action Permissions govern.
type permKind int

const (
	permChannel permKind = iota
	permRoom
	permRecord
	permWriteRecord
	permPresence
)

// allows reports whether p lets name be used for kind. A nil p allows all.
func (p *Permissions) allows(kind permKind, name string) bool {
	if p == nil {
		return true
	}
	var has bool
	var list []*regexp.Regexp
	switch kind {
	case permChannel:
		has, list = p.hasChannels, p.Channels
	case permRoom:
		has, list = p.hasRooms, p.Rooms
	case permRecord:
		has, list = p.hasRecords, p.Records
	case permWriteRecord:
		has, list = p.hasWriteRecords, p.WriteRecords
	case permPresence:
		has, list = p.hasPresence, p.Presence
	}
	if !has {
		return true
	}
	for _, re := range list {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// connIdentity is what the edge tier keeps as a connection's
// mesh.Identity.Claims: its permissions and, for a token, its claims.
type connIdentity struct {
	Perms  *Permissions
	Claims map[string]any // a token's verified claims; nil for the connect proxy
}

// guard is the exposures' guard for kind: the connection's permissions,
// if it has any.
func guard(kind permKind) mesh.Guard {
	return func(c *mesh.Connection, name string) bool {
		id, _ := c.Claims().(*connIdentity)
		if id == nil {
			return true
		}
		return id.Perms.allows(kind, name)
	}
}
