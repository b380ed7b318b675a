/*
 * rotation.pml: latchkey's refresh-token rotation, for the Spin model checker.
 *
 * One session, CLIENTS clients refreshing it through NODES nodes that share
 * one store, a user who logs out, an attacker presenting forged tokens, a
 * clock that closes the grace window, nodes that crash between any two steps
 * and a network that loses answers. docs/protocol.md explains the model, maps
 * each step to the Go function that implements it and says how to run it;
 * model_test.go runs every property and every mutant.
 *
 * Every store call is one atomic step, as every backend makes it (one
 * conditional UPDATE on SQLite and PostgreSQL, one Lua script on Redis).
 * The work a node does between two store calls touches no shared state, so it
 * is folded into the store call before it.
 *
 * Checks: pan compiled with -DNOCLAIM searches the in-line assertions
 * (check) and end states; otherwise pan -N <name> searches one LTL property
 * at the end of this file (recover with -a: it is a liveness property).
 *
 * Mutants (-D on the spin command line) plant a bug each; model_test.go
 * asserts that Spin finds a counterexample for every one of them:
 *   MUTANT_NO_GEN_CHECK        RotateSession swaps without comparing the generation
 *   MUTANT_GRACE_AFTER_REVOKE  settle answers a grace refresh before refusing a revoked session
 *   MUTANT_REUSE_BEFORE_MAC    a forged token reaches settle, whose reuse branch revokes before the MAC check
 *   MUTANT_NO_LIVE_CHECK       RotateSession swaps a revoked session
 *   MUTANT_NO_GRACE            Classify has no grace case
 *   MUTANT_REUSE_NO_REVOKE     settle answers refresh_reused without revoking the session
 */

#ifndef CLIENTS
#define CLIENTS 2       /* clients holding the session's tokens */
#endif
#ifndef ROUNDS
#define ROUNDS 2        /* a client stops once it holds this generation */
#endif
#ifndef CRASHES
#define CRASHES 1       /* node crashes, at any moment, on either node */
#endif
#ifndef LOSSES
#define LOSSES 1        /* answers the network loses */
#endif
#define NODES 2
/* The in-line assertions. LTL_ONLY turns them off, so that a mutant's
 * counterexample is known to come from the temporal property run with it. */
#ifdef LTL_ONLY
#define check(c) skip
#else
#define check(c) assert(c)
#endif
#define GENS (ROUNDS + CLIENTS + 3)   /* room for every generation a mutant can reach */
#define ATTACKER CLIENTS              /* the requester number of the attacker */

/* Answers a node gives, and LOST for an answer that never arrives. */
mtype = { OK, LOST, UNAVAILABLE, REUSED, REVOKED, INVALID };
/* Session.RevokeReason. */
mtype = { NOREASON, LOGOUT, REUSE };
/* refreshtoken.Classify's verdicts, after refusal: what settle does. */
mtype = { ROTATE, GRACE, REUSED_V, AHEAD, REFUSED_REUSED, REFUSED_REVOKED };

/* The store: the session row (store.Session). */
byte gen = 0;             /* Generation */
bool recent = false;      /* now < RotatedAt + ReuseGrace, judged by the nodes' common clock */
bool revoked = false;     /* RevokedAt is set */
mtype reason = NOREASON;  /* RevokeReason */

/* The environment's budgets. */
byte crashes = CRASHES;
byte losses = LOSSES;
byte epoch[NODES];        /* bumped by a crash: requests in flight on that node die */

/* Ghost state: read by the properties, never by the protocol. */
byte succ[GENS];          /* successful swaps from each generation */
byte genAtRevoke = 0;     /* the generation the session was revoked at */
bool pairRevoked = false; /* a pair was decided while the session was revoked */
bool staleWin = false;    /* a pair was decided for a token older than the predecessor */
bool forgedWrite = false; /* a forged token changed the store */
bool reusedLive = false;  /* refresh_reused was answered while the session was live */
bool recovering[CLIENTS + 1]; /* the client lost an answer carrying a new pair (the last slot, the attacker's, stays unused) */
byte lostSucc[CLIENTS + 1];   /* the generation that answer carried */

/*
 * RotateSession (store.Sessions; sqlite.(*DB).RotateSession): the
 * compare-and-swap. Advances the session from generation from to from+1 if it
 * is still at from and live; otherwise changes nothing (ErrConflict).
 * Runs inside the caller's atomic step.
 */
inline RotateSession(from, forged) {
	if
#if defined(MUTANT_NO_GEN_CHECK)
	:: !revoked ->
#elif defined(MUTANT_NO_LIVE_CHECK)
	:: gen == from ->
#else
	:: gen == from && !revoked ->
#endif
		check(!forged);
		forgedWrite = forgedWrite || forged;
		staleWin = staleWin || from + 1 < gen;
		succ[from]++;
		gen++;
		recent = true;
		pairRevoked = pairRevoked || revoked;
		ans = OK;
		g = gen
	:: else ->
		ans = UNAVAILABLE   /* ErrConflict; settle decides */
	fi
}

/*
 * RevokeSession (store.Revocations; sqlite.(*DB).RevokeSession): marks the
 * session revoked with why, once; revoking a revoked session changes nothing.
 */
inline RevokeSession(why, forged) {
	check(!forged);
	forgedWrite = forgedWrite || forged;
	if
	:: !revoked ->
		revoked = true;
		reason = why;
		genAtRevoke = gen
	:: else -> skip
	fi
}

/*
 * Crashed: has node n crashed since this request arrived? Checked at the
 * start of every atomic step, so a crash falls between any two steps.
 */
#define crashed (epoch[n] != ep)

/*
 * Refresh (Auth.Refresh, refresh.go) of token generation t, authentic unless
 * forged, on node n, for requester c (a client, or ATTACKER), and the
 * requester's receipt of the answer. Uses the caller's locals ep, v, attempt,
 * g, lostPair, inWin, stop and ans; leaves all but stop zero.
 */
inline Refresh(n, t, forged, c) {
	atomic {
		ep = epoch[n];
		/* decodeRefresh: form, checksum and MAC, before anything is read. */
#ifdef MUTANT_REUSE_BEFORE_MAC
		if
		:: forged -> goto settle   /* the bug: the MAC is checked later, in settle */
		:: else -> skip
		fi;
#else
		if
		:: forged -> ans = INVALID; goto reply
		:: else -> skip
		fi;
#endif
		/* refresh: the common case first, one swap from the presented generation. */
		RotateSession(t, forged);
		if
		:: ans == OK -> goto reply
		:: else -> skip
		fi
	}
settle:
	/* settle: the swap refused; read the session to say why. */
	do
	:: atomic {
		if
		:: crashed -> ans = LOST; goto reply
		:: else -> skip
		fi;
		/* Session: one read of the row (the step is atomic, so the globals
		 * are the row read); then refusal and refreshtoken.Classify. */
#ifdef MUTANT_GRACE_AFTER_REVOKE
		if
		:: t + 1 == gen && recent -> v = GRACE   /* the bug: grace before refusal */
		:: else ->
#endif
		if
		:: revoked && reason == REUSE -> v = REFUSED_REUSED
		:: revoked && reason != REUSE -> v = REFUSED_REVOKED
		:: !revoked && t == gen -> v = ROTATE
		:: !revoked && t > gen -> v = AHEAD
#ifdef MUTANT_NO_GRACE
		:: !revoked && t < gen -> v = REUSED_V
#else
		:: !revoked && t + 1 == gen && recent -> v = GRACE
		:: !revoked && t < gen && !(t + 1 == gen && recent) -> v = REUSED_V
#endif
		fi;
#ifdef MUTANT_GRACE_AFTER_REVOKE
		fi;
#endif
		/* Ghost: a retry after a lost pair, inside the window, must get it. */
		if
		:: c < CLIENTS && recovering[c] && gen == lostSucc[c] && recent && !revoked ->
			inWin = true;
			check(v == GRACE)
		:: else -> inWin = false
		fi;
#ifdef MUTANT_REUSE_BEFORE_MAC
		/* The MAC, checked after the reuse branch's decision. */
		if
		:: forged && v != REUSED_V -> ans = INVALID; goto reply
		:: else -> skip
		fi;
#endif
		/* Grace: finishRefresh with the row just read; nothing is written. */
		if
		:: v == GRACE ->
			staleWin = staleWin || t + 1 < gen;
			pairRevoked = pairRevoked || revoked;
			ans = OK; g = gen; goto reply
		:: v == AHEAD -> ans = INVALID; goto reply
		:: v == REFUSED_REUSED -> ans = REUSED; goto reply
		:: v == REFUSED_REVOKED -> ans = REVOKED; goto reply
		:: v == ROTATE || v == REUSED_V -> skip
		fi
	   }
		if
		:: v == ROTATE ->
			/* RotateSession again, from the generation read (t itself). */
			atomic {
				if
				:: crashed -> ans = LOST; goto reply
				:: else -> RotateSession(t, forged)
				fi;
				if
				:: ans == OK -> goto reply
				:: ans != OK && attempt < 3 -> attempt++
				:: ans != OK && attempt >= 3 -> ans = UNAVAILABLE; goto reply
				fi
			}
		:: v == REUSED_V ->
			/* revokeSession with ReasonReused, then refresh_reused. */
			atomic {
				if
				:: crashed -> ans = LOST; goto reply
				:: else -> skip
				fi;
#ifndef MUTANT_REUSE_NO_REVOKE
				RevokeSession(REUSE, forged);
#endif
#ifdef MUTANT_REUSE_BEFORE_MAC
				if
				:: forged -> ans = INVALID; goto reply
				:: else -> skip
				fi;
#endif
				reusedLive = reusedLive || !revoked;
				ans = REUSED; goto reply
			}
		fi
	od;
reply:
	atomic {
		/* The answer leaves the node, which may have crashed, and crosses a
		 * network that may lose a client's answer. */
		if
		:: crashed -> lostPair = (ans == OK); ans = LOST
		:: !crashed && c < CLIENTS && losses > 0 -> losses--; lostPair = (ans == OK); ans = LOST
		:: !crashed -> skip
		fi;
		/* The requester receives it, or nothing. */
		if
		:: c == ATTACKER ->
			check(ans == INVALID || ans == LOST)   /* a forged token gets nothing */
		:: c < CLIENTS && ans == OK ->
			check(g == t + 1);                      /* one token buys exactly its successor */
			check(!recovering[c] || g == lostSucc[c]);
			recovering[c] = false;
			t = g
		:: c < CLIENTS && ans == LOST ->
			if
			:: lostPair -> recovering[c] = true; lostSucc[c] = g
			:: else -> skip
			fi;
			n = 1 - n   /* the retry goes to the other node */
		:: c < CLIENTS && ans == UNAVAILABLE ->
			n = 1 - n
		:: c < CLIENTS && (ans == REUSED || ans == REVOKED || ans == INVALID) ->
			if
			:: !inWin -> recovering[c] = false   /* refused outside the window */
			:: else -> skip
			fi;
			stop = true
		fi;
		ep = 0; v = 0; attempt = 0; g = 0; lostPair = false; inWin = false; ans = 0
	}
}

/* A client: refreshes with the newest token it holds until it holds
 * generation ROUNDS, and retries with the same token, on the other node,
 * when no answer comes. Client c starts on node c % NODES. */
proctype Client(byte c) {
	byte t = 0, n = c % NODES, ep, g, attempt;
	bool lostPair, inWin, stop;
	mtype v, ans;
	do
	:: t >= ROUNDS || stop -> break
	:: else -> Refresh(n, t, false, c)
	od
}

/* The user logs out of the session (Auth.Logout, LogoutLocal) on some node
 * at some moment: revokeSession with ReasonLogout. */
proctype User() {
	byte n, ep;
	atomic {
		select(n : 0 .. NODES - 1);
		ep = epoch[n]
	}
	atomic {
		if
		:: crashed -> skip
		:: else -> RevokeSession(LOGOUT, false)
		fi
	}
}

/* An attacker presents a forged token (a valid form, a wrong MAC) of any
 * generation, on node 0. */
proctype Attacker() {
	byte t, n, ep, g, attempt;
	bool lostPair, inWin, stop;
	mtype v, ans;
	select(t : 0 .. ROUNDS);
	Refresh(n, t, true, ATTACKER)
}

/* Time passes: the grace window of the last rotation closes. */
proctype Clock() {
end:
	do
	:: atomic { recent -> recent = false }
	od
}

/* A node crashes and restarts: every request in flight on it dies. */
proctype Crash() {
end:
	do
	:: atomic {
		crashes > 0 ->
		crashes--;
		if
		:: epoch[0]++
		:: epoch[1]++
		fi
	   }
	od
}

init {
	byte i;
	atomic {
		for (i : 0 .. CLIENTS - 1) {
			run Client(i)
		}
		run User();
		run Attacker();
		run Clock();
		run Crash()
	}
}

/* The properties. Each is checked on its own (pan -N name); every run also
 * checks the assertions above. */

/* No fork: at most one successful swap from each generation (written out
 * for GENS = 7, the defaults). */
#define nofork (succ[0] <= 1 && succ[1] <= 1 && succ[2] <= 1 && succ[3] <= 1 && succ[4] <= 1 && succ[5] <= 1 && succ[6] <= 1)
ltl no_fork { [] nofork }

/* A token older than the immediate predecessor never yields a pair. */
ltl no_stale { [] !staleWin }

/* A revoked session stays revoked, never rotates again and yields no pair. */
ltl revoked_final { [] (revoked -> [] (revoked && gen == genAtRevoke && !pairRevoked)) }

/* A client whose new pair was lost gets it back on a retry inside the grace
 * window; only a retry outside the window may end without it. */
ltl recover { [] ((recovering[0] -> <> !recovering[0]) && (recovering[1] -> <> !recovering[1])) }

/* A forged token changes no state. */
ltl forged_inert { [] !forgedWrite }

/* refresh_reused is answered only once the session is revoked. */
ltl reuse_revokes { [] !reusedLive }
