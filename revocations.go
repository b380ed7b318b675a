package latchkey

import (
	"context"
	"sync"
	"time"

	"github.com/latchkey/latchkey/store"
)

// revocations is this node's copy of the store's revocation feed: the sessions
// and single access tokens that Verify must refuse. It is filled at start and
// then followed, so verifying stays free of store round trips.
type revocations struct {
	mu       sync.RWMutex
	sessions map[string]time.Time // session id -> until
	tokens   map[string]time.Time // jti -> until
	seq      int64                // last feed entry applied
}

func newRevocations() *revocations {
	return &revocations{sessions: map[string]time.Time{}, tokens: map[string]time.Time{}}
}

func (r *revocations) add(rev store.Revocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addLocked(rev)
}

func (r *revocations) addLocked(rev store.Revocation) {
	m, id := r.sessions, rev.SessionID
	if id == "" {
		m, id = r.tokens, rev.TokenID
	}
	if rev.Until.After(m[id]) {
		m[id] = rev.Until
	}
}

func (r *revocations) has(sid, jti string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, s := r.sessions[sid]
	_, t := r.tokens[jti]
	return s || t
}

// forget drops entries whose tokens have all expired.
func (r *revocations) forget(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range []map[string]time.Time{r.sessions, r.tokens} {
		for id, until := range m {
			if now.After(until) {
				delete(m, id)
			}
		}
	}
}

const feedPage = 1000

// syncRevocations applies every feed entry after the last one seen.
func (a *Auth) syncRevocations(ctx context.Context) error {
	for {
		a.revoked.mu.RLock()
		after := a.revoked.seq
		a.revoked.mu.RUnlock()
		revs, err := a.st.RevocationsAfter(ctx, after, a.cfg.Now(), feedPage)
		if err != nil {
			return err
		}
		a.revoked.mu.Lock()
		for _, rev := range revs {
			a.revoked.addLocked(rev)
			if rev.Seq > a.revoked.seq {
				a.revoked.seq = rev.Seq
			}
		}
		a.revoked.mu.Unlock()
		if len(revs) < feedPage {
			return nil
		}
	}
}

// Intervals of the background work.
const (
	keyReloadInterval = 30 * time.Second
	purgeInterval     = 10 * time.Minute
)

// follow polls the revocation feed twice per revocation delay, so a revocation on
// any node is enforced here within the delay; it also picks up key rotations
// made elsewhere and purges what has expired.
//
// A store that announces feed appends (store.Notifier) wakes it at once.
func (a *Auth) follow() {
	defer close(a.done)
	poll := time.NewTicker(a.cfg.RevocationDelay / 2)
	defer poll.Stop()
	var pushed <-chan struct{}
	if n, ok := a.cfg.Store.(store.Notifier); ok {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if ch, err := n.Subscribe(ctx); err == nil {
			pushed = ch
		} else {
			a.cfg.Logger.Warn("revocation announcements unavailable; polling only", "err", err)
		}
	}
	var lastKeys, lastPurge time.Time
	synced := time.Now()
	failing := false
	for {
		select {
		case <-a.stop:
			return
		case <-poll.C:
		case _, ok := <-pushed:
			if !ok {
				pushed = nil // the subscription ended: keep polling
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.RevocationDelay)
		err := a.syncRevocations(ctx)
		if err == nil {
			synced = time.Now()
		}
		// How far behind the store this node may be: the age of the last
		// complete read of the feed.
		a.observe(ctx, Event{Kind: EventFeed, Duration: time.Since(synced)})
		switch {
		case err != nil && !failing:
			failing = true
			a.cfg.Logger.Error("following the revocation feed failed; revocations from other nodes are not enforced until the store answers again", "err", err)
		case err == nil && failing:
			failing = false
			a.cfg.Logger.Info("revocation feed reachable again")
		}
		now := time.Now()
		if now.Sub(lastKeys) >= keyReloadInterval {
			lastKeys = now
			if err := a.ring.Reload(ctx); err != nil && !failing {
				a.cfg.Logger.Warn("reloading signing keys failed", "err", err)
			}
		}
		cancel()
		if now.Sub(lastPurge) >= purgeInterval {
			lastPurge = now
			a.revoked.forget(a.cfg.Now())
			pctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if n, err := a.st.Purge(pctx, a.cfg.Now(), ExpiredRetention); err != nil {
				a.cfg.Logger.Warn("purging expired sessions failed", "err", err)
			} else if n > 0 {
				a.cfg.Logger.Info("purged expired sessions", "count", n)
			}
			cancel()
		}
	}
}
