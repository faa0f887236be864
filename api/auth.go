package api

import (
	"crypto/subtle"
	"strings"

	"github.com/valyala/fasthttp"

	"notifyrelay/config"
	"notifyrelay/oma"
)

// AuthUser is the reserved {userId} meaning "the user of the access token".
const AuthUser = "acr:auth"

// Principal is who a request acts as.
type Principal struct {
	User     string // the token's user; empty for operators and when auth is off
	Operator bool   // may act for any user and use the operator API
}

// Auth checks bearer tokens against the configured list. With no tokens it lets every
// request act for any user.
type Auth struct {
	tokens map[string]config.Token
}

// NewAuth builds the checker from auth.tokens.
func NewAuth(tokens []config.Token) *Auth {
	a := &Auth{tokens: map[string]config.Token{}}
	for _, t := range tokens {
		a.tokens[t.Token] = t
	}
	return a
}

// Off reports whether authentication is off.
func (a *Auth) Off() bool { return len(a.tokens) == 0 }

// Authenticate reads the bearer token from the Authorization header, or from the
// access_token query parameter when allowQuery is set (browser WebSockets). Missing
// or unknown → 401 SVC2003.
func (a *Auth) Authenticate(ctx *fasthttp.RequestCtx, allowQuery bool) (Principal, *oma.RequestError) {
	if a.Off() {
		return Principal{Operator: true}, nil
	}
	tok := bearer(string(ctx.Request.Header.Peek("Authorization")))
	if tok == "" && allowQuery {
		tok = string(ctx.QueryArgs().Peek("access_token"))
	}
	for known, t := range a.tokens {
		if subtle.ConstantTimeCompare([]byte(tok), []byte(known)) == 1 {
			return Principal{User: t.User, Operator: t.Operator}, nil
		}
	}
	return Principal{}, oma.Unauthorized()
}

func bearer(h string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// ActAs authenticates ctx and resolves {userId}: acr:auth becomes the token's user.
// A user token acting for another user → 403 POL0001.
func (a *Auth) ActAs(ctx *fasthttp.RequestCtx, userID string) (string, *oma.RequestError) {
	p, err := a.Authenticate(ctx, false)
	if err != nil {
		return "", err
	}
	return p.Resolve(userID)
}

// Resolve maps {userId} for this principal, refusing users it may not act for.
func (p Principal) Resolve(userID string) (string, *oma.RequestError) {
	if userID == AuthUser {
		if p.User == "" {
			return "", oma.InvalidInput("userId (acr:auth needs a user token)")
		}
		return p.User, nil
	}
	if p.Operator || p.User == userID {
		return userID, nil
	}
	return "", oma.Forbidden("token not valid for user " + userID)
}
