package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/latchkey/latchkey/audit"
	"github.com/latchkey/latchkey/store"
)

// auditList prints stored audit events, newest first: every user's, or one
// user's with --user, from --since ago, as a table or (--json) JSON lines.
func auditList(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error {
	st, ok := e.store.(store.Audit)
	if !ok {
		return errors.New("this store keeps no audit events")
	}
	f := store.EventFilter{Limit: 1000}
	if c.o.since > 0 {
		f.Since = e.auth.Config().Now().Add(-c.o.since)
	}
	if c.o.user != "" {
		u, err := e.users.ByName(ctx, c.o.user)
		if err != nil {
			return err
		}
		f.UserID = u.ID
	}
	evs, err := st.Events(ctx, f)
	if err != nil {
		return err
	}
	if c.o.json {
		enc := json.NewEncoder(c.stdout)
		for _, ev := range evs {
			if err := enc.Encode(audit.LineOf(ev)); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintln(tw, "TIME\tKIND\tACTOR\tUSER\tSESSION\tIP\tDETAIL")
	for _, ev := range evs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", stamp(ev.At), ev.Kind, ev.Actor, dash(ev.UserID), dash(ev.SessionID), dash(ev.IP), dash(ev.Detail))
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
