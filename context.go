package latchkey

import "context"

type principalKey struct{}

// NewContext returns a copy of ctx carrying the verified caller p. Only
// middleware that has verified p should call it.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the verified caller of the request whose context is ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

type tokensKey struct{}

// NewTokensContext returns a copy of ctx carrying the token pair a refresh
// middleware has just issued.
func NewTokensContext(ctx context.Context, t *Tokens) context.Context {
	return context.WithValue(ctx, tokensKey{}, t)
}

// TokensFromContext returns the token pair issued by a refresh middleware for
// this request.
func TokensFromContext(ctx context.Context) (*Tokens, bool) {
	t, ok := ctx.Value(tokensKey{}).(*Tokens)
	return t, ok && t != nil
}
