package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey"
)

// admin runs the users, sessions, clients and keys commands against the store.
func admin(ctx context.Context, o *options, cmd, sub string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	want := map[string]int{
		"users add": 1, "users list": 0, "users disable": 1, "users enable": 1,
		"sessions list": 1, "sessions revoke": 1,
		"keys list": 0, "keys rotate": 0,
		"clients add": 1, "clients list": 0, "clients remove": 1,
	}
	n, ok := want[cmd+" "+sub]
	if !ok {
		return usagef("unknown command %q (see 'latchkey help')", cmd+" "+sub)
	}
	if len(args) != n {
		return usagef("%s %s takes %d argument(s), got %d (flags go before arguments)", cmd, sub, n, len(args))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := o.open(ctx, log, "", true)
	if err != nil {
		return err
	}
	defer e.close()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch cmd + " " + sub {
	case "users add":
		pw, err := readPassword(stdin)
		if err != nil {
			return err
		}
		u, err := e.users.Register(ctx, args[0], pw)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\n", u.ID, u.Username)
	case "users list":
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
	case "users disable", "users enable":
		u, err := e.users.SetDisabled(ctx, args[0], sub == "disable")
		if err != nil {
			return err
		}
		if sub == "disable" {
			if err := e.auth.RevokeUser(ctx, u.ID, "", latchkey.ReasonAdmin); err != nil {
				return err
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%sd\n", u.ID, u.Username, sub)
	case "sessions list":
		u, err := e.users.ByName(ctx, args[0])
		if err != nil {
			return err
		}
		ss, err := e.auth.Sessions(ctx, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tCREATED\tLAST USED\tEXPIRES\tIP\tUSER AGENT")
		for _, s := range ss {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, stamp(s.CreatedAt), stamp(s.LastUsedAt), stamp(s.IdleExpiresAt), s.IP, s.UserAgent)
		}
	case "sessions revoke":
		if err := e.auth.RevokeSession(ctx, args[0], latchkey.ReasonAdmin); err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\trevoked\n", args[0])
	case "clients add":
		c, secret, err := e.clients.Add(ctx, args[0], o.clientName, o.confidential)
		if err != nil {
			return err
		}
		if secret == "" {
			fmt.Fprintf(tw, "%s\tpublic\n", c.ID)
			break
		}
		fmt.Fprintf(tw, "%s\tconfidential\n", c.ID)
		fmt.Fprintf(tw, "client_secret: %s\n", secret)
		fmt.Fprintln(stderr, "The secret is shown only now; latchkey keeps only its hash.")
	case "clients list":
		cs, err := e.clients.List(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "CLIENT_ID\tTYPE\tCREATED\tNAME")
		for _, c := range cs {
			kind := "confidential"
			if c.Public() {
				kind = "public"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, kind, stamp(c.CreatedAt), c.Name)
		}
	case "clients remove":
		if err := e.clients.Remove(ctx, args[0]); err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\tremoved\n", args[0])
	case "keys rotate":
		rotate := e.auth.Keys().Rotate
		if o.force {
			rotate = e.auth.Keys().ForceRotate
		}
		if err := rotate(ctx); err != nil {
			return err
		}
		fallthrough
	case "keys list":
		fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tACTIVATED\tRETIRED")
		for _, k := range e.auth.Keys().Info() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State, stamp(k.CreatedAt), stamp(k.ActivatedAt), stamp(k.RetiredAt))
		}
	}
	return nil
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
