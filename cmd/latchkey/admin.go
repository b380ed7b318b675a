package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/audit"
	"github.com/latchkey/latchkey/internal/device"
	"github.com/latchkey/latchkey/oauth"
	"github.com/latchkey/latchkey/store"
)

// adminFunc is an administrative command: it works on the opened store and
// writes its table to tw.
type adminFunc func(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error

// withStore opens the store and the Auth for an administrative command, runs
// it, and closes them.
func withStore(f adminFunc) func(ctx context.Context, c *call) error {
	return func(ctx context.Context, c *call) error {
		log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		e, err := c.o.open(ctx, log, "", true)
		if err != nil {
			return err
		}
		defer e.close()
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		defer tw.Flush()
		return f(ctx, c, e, tw)
	}
}

func usersAdd(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error {
	pw, err := readPassword(c.stdin)
	if err != nil {
		return err
	}
	u, err := e.users.Register(ctx, c.args[0], pw)
	if err != nil {
		return err
	}
	e.record(store.Event{Kind: audit.KindUserCreated, UserID: u.ID})
	fmt.Fprintf(tw, "%s\t%s\n", u.ID, u.Username)
	return nil
}

func usersList(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error {
	us, err := e.users.List(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(tw, "UUID\tUSERNAME\tSTATUS\tCREATED")
	for _, u := range us {
		status := "active"
		if u.Disabled {
			status = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.ID, u.Username, status, stamp(u.CreatedAt))
	}
	return nil
}

// usersShow prints one user and the identities at other providers linked
// to it.
func usersShow(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error {
	u, err := e.users.ByName(ctx, c.args[0])
	if err != nil {
		return err
	}
	status := "active"
	if u.Disabled {
		status = "disabled"
	}
	fmt.Fprintf(tw, "UUID\t%s\nUSERNAME\t%s\nSTATUS\t%s\nPASSWORD\t%v\nCREATED\t%s\n", u.ID, u.Username, status, u.HasPassword(), stamp(u.CreatedAt))
	ids, err := e.users.Identities(ctx, u.ID)
	if err != nil {
		return err
	}
	fmt.Fprintln(tw, "\nIDENTITY\tPROVIDER\tSUBJECT\tEMAIL\tLINKED")
	for _, id := range ids {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id.ID, id.Provider, id.Subject, id.Email, stamp(id.CreatedAt))
	}
	return nil
}

// usersDisable disables a user and revokes every session of it.
func usersDisable(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error {
	u, err := e.users.SetDisabled(ctx, c.args[0], true)
	if err != nil {
		return err
	}
	e.record(store.Event{Kind: audit.KindUserDisabled, UserID: u.ID})
	if err := e.auth.Revoke(ctx, latchkey.RevokeOptions{UserID: u.ID, Reason: latchkey.ReasonAdmin}); err != nil {
		return err
	}
	fmt.Fprintf(tw, "%s\t%s\tdisabled\n", u.ID, u.Username)
	return nil
}

func usersEnable(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error {
	u, err := e.users.SetDisabled(ctx, c.args[0], false)
	if err != nil {
		return err
	}
	e.record(store.Event{Kind: audit.KindUserEnabled, UserID: u.ID})
	fmt.Fprintf(tw, "%s\t%s\tenabled\n", u.ID, u.Username)
	return nil
}

func sessionsList(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error {
	u, err := e.users.ByName(ctx, c.args[0])
	if err != nil {
		return err
	}
	ss, err := e.auth.Sessions(ctx, u.ID)
	if err != nil {
		return err
	}
	fmt.Fprintln(tw, "ID\tCREATED\tLAST USED\tEXPIRES\tIP\tDEVICE")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, stamp(s.CreatedAt), stamp(s.LastUsedAt), stamp(s.IdleExpiresAt), s.IP, device.Name(s.UserAgent))
	}
	return nil
}

func sessionsRevoke(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error {
	if err := e.auth.Revoke(ctx, latchkey.RevokeOptions{SessionID: c.args[0], Reason: latchkey.ReasonAdmin}); err != nil {
		return err
	}
	fmt.Fprintf(tw, "%s\trevoked\n", c.args[0])
	return nil
}

func clientsAdd(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error {
	cl, secret, err := e.clients.Add(ctx, c.args[0], oauth.Options{Name: c.o.clientName, Confidential: c.o.confidential, Origins: c.o.clientOrigins,
		DPoPRequired: c.o.dpopRequired})
	if err != nil {
		return err
	}
	e.record(store.Event{Kind: audit.KindClientAdded, Detail: clientDetail(cl.ID)})
	if secret == "" {
		fmt.Fprintf(tw, "%s\tpublic\n", cl.ID)
		return nil
	}
	fmt.Fprintf(tw, "%s\tconfidential\n", cl.ID)
	fmt.Fprintf(tw, "client_secret: %s\n", secret)
	fmt.Fprintln(c.stderr, "The secret is shown only now; latchkey keeps only its hash.")
	return nil
}

func clientsList(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error {
	cs, err := e.clients.List(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(tw, "CLIENT_ID\tTYPE\tDPOP\tCREATED\tORIGINS\tNAME")
	for _, cl := range cs {
		kind := "confidential"
		if cl.Public() {
			kind = "public"
		}
		origins := strings.Join(cl.Origins, ",")
		if origins == "" {
			origins = "-"
		}
		dp := "optional"
		if cl.DPoPRequired {
			dp = "required"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cl.ID, kind, dp, stamp(cl.CreatedAt), origins, cl.Name)
	}
	return nil
}

func clientsRemove(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error {
	if err := e.clients.Remove(ctx, c.args[0]); err != nil {
		return err
	}
	e.record(store.Event{Kind: audit.KindClientRemoved, Detail: clientDetail(c.args[0])})
	fmt.Fprintf(tw, "%s\tremoved\n", c.args[0])
	return nil
}

func keysList(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error {
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tACTIVATED\tRETIRED")
	for _, k := range e.auth.Keys().Info() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State, stamp(k.CreatedAt), stamp(k.ActivatedAt), stamp(k.RetiredAt))
	}
	return nil
}

// keysRotate rotates the keys and lists them.
func keysRotate(ctx context.Context, c *call, e *env, tw *tabwriter.Writer) error {
	rotate := e.auth.Keys().Rotate
	if c.o.force {
		rotate = e.auth.Keys().ForceRotate
	}
	if err := rotate(ctx); err != nil {
		return err
	}
	e.record(store.Event{Kind: audit.KindKeyRotated})
	return keysList(ctx, c, e, tw)
}

// clientDetail is the audit detail naming a client.
func clientDetail(id string) string {
	b, _ := json.Marshal(map[string]string{"client_id": id})
	return string(b)
}

// readPassword reads one line from stdin, so a password never appears in the
// process list or the shell history.
func readPassword(stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usagef("the password is read from standard input: echo 'secret pass' | latchkey users add NAME")
	}
	return pw, nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
