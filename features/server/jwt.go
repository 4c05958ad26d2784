package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
)

// Authentication with a JSON Web Token at connect. The token is read from
// the Authorization header ("Bearer TOKEN"), else from the query parameter
// JWTConfig.QueryParam ("?token=TOKEN": a browser cannot set headers on a
// WebSocket). It is verified on the event loop before the upgrade (an
// HMAC takes microseconds, an RSA signature check tens of them): a
// missing, malformed, badly signed, expired (exp), not yet valid (nbf) or
// wrongly addressed (aud, iss) token is refused with 401 and a
// WWW-Authenticate header saying why, and the WebSocket never opens.
//
// Its claims:
//
//   - exp is required: a token without one would be valid forever;
//   - sub is the connection's user id (mesh.Connection.User), which
//     SendToUser and the command proxy use;
//   - meta, if present, becomes the connection's Mesh metadata before its
//     first command (mesh/get-my-connection-metadata returns it);
//   - allow, if present, is the connection's Permissions (perms.go).
//
// Every verified claim is kept with the connection (connIdentity.Claims).
const (
	claimMeta  = "meta"
	claimAllow = "allow"
)

// jwtAuth verifies tokens for one configuration.
type jwtAuth struct {
	cfg    JWTConfig
	parser *jwt.Parser
}

func newJWTAuth(cfg JWTConfig) *jwtAuth {
	var methods []string
	if cfg.HMACSecret != "" {
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.rsaKey != nil {
		methods = append(methods, jwt.SigningMethodRS256.Alg())
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired()}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	return &jwtAuth{cfg: cfg, parser: jwt.NewParser(opts...)}
}

// key is the parser's Keyfunc: the method was checked against the
// configured ones (WithValidMethods) before it runs.
func (a *jwtAuth) key(t *jwt.Token) (any, error) {
	switch t.Method.Alg() {
	case jwt.SigningMethodHS256.Alg():
		return []byte(a.cfg.HMACSecret), nil
	case jwt.SigningMethodRS256.Alg():
		return a.cfg.rsaKey, nil
	}
	return nil, fmt.Errorf("unexpected method %s", t.Method.Alg())
}

// refuse401 is the refusal of a handshake without a valid token, with the
// challenge of RFC 6750 3.1.
func refuse401(code, why string) error {
	h := `WWW-Authenticate: Bearer realm="meshfast"`
	if code != "" {
		h += fmt.Sprintf(`, error=%q, error_description=%q`, code, why)
	}
	return mesh.Refuse(401, why, h)
}

// authenticate is mesh.Options.Authenticate. Loop only; it does not block.
func (a *jwtAuth) authenticate(r *engine.Request) (mesh.Identity, error) {
	tok := ""
	if h := r.Header("Authorization"); h != nil {
		scheme, rest, ok := strings.Cut(string(h), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return mesh.Identity{}, refuse401("invalid_request", "the Authorization header is not a Bearer token")
		}
		tok = strings.TrimSpace(rest)
	} else {
		tok = r.QueryValue(a.cfg.QueryParam)
	}
	if tok == "" {
		return mesh.Identity{}, refuse401("", "a token is required")
	}
	claims, err := a.verify(tok)
	if err != nil {
		return mesh.Identity{}, refuse401("invalid_token", err.Error())
	}
	id, err := identityFromClaims(claims)
	if err != nil {
		return mesh.Identity{}, refuse401("invalid_token", err.Error())
	}
	return id, nil
}

// verify checks a token and returns its claims, or an error that says
// in a few words why it is refused ("token expired"). CPU only.
func (a *jwtAuth) verify(tok string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	if _, err := a.parser.ParseWithClaims(tok, claims, a.key); err != nil {
		why := "invalid token"
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			why = "token expired"
		case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
			why = "token has no expiry (exp)"
		case errors.Is(err, jwt.ErrTokenNotValidYet):
			why = "token not valid yet"
		case errors.Is(err, jwt.ErrTokenInvalidAudience):
			why = "token not for this audience"
		case errors.Is(err, jwt.ErrTokenInvalidIssuer):
			why = "token from another issuer"
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
			why = "token signature invalid"
		}
		return nil, errors.New(why)
	}
	return claims, nil
}

// identityFromClaims turns verified claims into the connection's identity.
func identityFromClaims(claims jwt.MapClaims) (mesh.Identity, error) {
	sub, err := claims.GetSubject()
	if err != nil {
		return mesh.Identity{}, errors.New("sub is not a string")
	}
	ci := &connIdentity{Claims: claims}
	if raw, ok := claims[claimAllow]; ok {
		b, err := json.Marshal(raw)
		if err != nil {
			return mesh.Identity{}, errors.New("allow claim unreadable")
		}
		if ci.Perms, err = parsePermissions(b); err != nil {
			return mesh.Identity{}, err
		}
	}
	id := mesh.Identity{User: sub, Claims: ci}
	if meta, ok := claims[claimMeta]; ok && meta != nil {
		id.Metadata = meta
	}
	return id, nil
}
