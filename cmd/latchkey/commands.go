package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// command is one command of the latchkey binary.
type command struct {
	name    string   // "serve", "users add"
	args    string   // its arguments for the usage text, e.g. "NAME"; one word each
	summary string   // one line for the command list
	flags   []string // the flags it reads: names of flagDefs
	run     func(ctx context.Context, c *call) error
}

// call is one invocation of a command: its parsed flags and arguments and the
// process's streams.
type call struct {
	o              *options
	args           []string
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
}

// Flags that several commands share. An administrative command opens the
// store and the stored signing keys (with the deployment secret from
// LATCHKEY_SECRET) and nothing else, so the store flags are all most need. A
// command that revokes sessions also writes revocation-feed entries that live
// as long as the sessions' access tokens may: their lifetime comes from
// --access-ttl and --leeway, which must match the servers'.
var (
	storeFlags  = []string{"store", "store-pool"}
	revokeFlags = []string{"store", "store-pool", "access-ttl", "leeway"}
	serveFlags  = []string{
		"addr", "store", "issuer", "audience", "signing-alg", "access-ttl", "refresh-ttl",
		"session-lifetime", "locked-expiry", "reuse-grace", "bind-access", "token-locations",
		"cookie-secure", "csrf", "registration", "revocation-delay", "leeway", "demo",
		"trusted-proxies", "store-pool", "memory-policy", "provider", "provider-signup",
		"audit-log", "audit-retention", "max-sessions", "request-log",
		"metrics-addr", "cors-origins", "dpop-required", "dpop-nonce", "dpop-max-age",
	}
)

// commands are every command, in the order of the usage text.
var commands = []*command{
	{name: "serve", summary: "start the token server", flags: serveFlags, run: runServe},
	{name: "users add", args: "NAME", summary: "add a user; the password is read from standard input", flags: storeFlags, run: withStore(usersAdd)},
	{name: "users list", summary: "list users", flags: storeFlags, run: withStore(usersList)},
	{name: "users show", args: "NAME", summary: "show a user and its identities at other providers", flags: storeFlags, run: withStore(usersShow)},
	{name: "users disable", args: "NAME", summary: "disable a user and revoke all of its sessions", flags: revokeFlags, run: withStore(usersDisable)},
	{name: "users enable", args: "NAME", summary: "enable a disabled user", flags: storeFlags, run: withStore(usersEnable)},
	{name: "sessions list", args: "NAME", summary: "list a user's live sessions", flags: storeFlags, run: withStore(sessionsList)},
	{name: "sessions revoke", args: "ID", summary: "revoke one session", flags: revokeFlags, run: withStore(sessionsRevoke)},
	{name: "clients add", args: "ID", summary: "register a public OAuth client (--confidential: with a secret, printed once)", flags: append([]string{"confidential", "client-name", "origin", "dpop-required"}, storeFlags...), run: withStore(clientsAdd)},
	{name: "clients list", summary: "list OAuth clients", flags: storeFlags, run: withStore(clientsList)},
	{name: "clients remove", args: "ID", summary: "remove an OAuth client: its refresh tokens stop working", flags: storeFlags, run: withStore(clientsRemove)},
	{name: "keys list", summary: "list signing keys", flags: storeFlags, run: withStore(keysList)},
	{name: "keys rotate", summary: "publish a new next key and start signing with the previous next key", flags: append([]string{"force"}, storeFlags...), run: withStore(keysRotate)},
	{name: "audit list", summary: "list audit events, newest first (--user NAME, --since 24h, --json)", flags: append([]string{"user", "since", "json"}, storeFlags...), run: withStore(auditList)},
	{name: "version", summary: "print the version", run: runVersion},
}

// lookup finds the command args start with and returns the rest of args.
// help is set when args ask for a group's command list (`latchkey users -h`).
func lookup(args []string) (c *command, rest []string, help bool, err error) {
	group := args[0]
	if len(args) > 1 {
		for _, c := range commands {
			if c.name == group+" "+args[1] {
				return c, args[2:], false, nil
			}
		}
	}
	for _, c := range commands {
		if c.name == group {
			return c, args[1:], false, nil
		}
	}
	if !isGroup(group) {
		return nil, nil, false, usagef("unknown command %q (see 'latchkey help')", group)
	}
	if len(args) == 1 {
		return nil, nil, false, usagef("%s needs a subcommand (see 'latchkey help')", group)
	}
	if isHelp(args[1]) {
		return nil, nil, true, nil
	}
	return nil, nil, false, usagef("unknown command %q (see 'latchkey help')", group+" "+args[1])
}

func isGroup(word string) bool {
	return slices.ContainsFunc(commands, func(c *command) bool { return strings.HasPrefix(c.name, word+" ") })
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// usage is the command list of `latchkey help`; group, if not empty, keeps
// only the commands of that group (`latchkey users -h`).
func usage(group string) string {
	var b strings.Builder
	b.WriteString("usage: latchkey <command> [flags] [arguments]\n\ncommands:\n")
	for _, c := range commands {
		if group != "" && !strings.HasPrefix(c.name, group+" ") {
			continue
		}
		fmt.Fprintf(&b, "  %-28s%s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	b.WriteString("\nRun 'latchkey COMMAND -h' for the flags of a command; each flag but --force,\n" +
		"--confidential and --client-name can also be set by its LATCHKEY_ environment\n" +
		"variable (--store: LATCHKEY_STORE). Flags go before arguments.\n")
	return b.String()
}

// errHelp reports that a command's help was printed as asked.
var errHelp = errors.New("help printed")

// parse parses the flags of c, then fills each setting not given on the
// command line from its LATCHKEY_ environment variable. Variables of flags c
// does not have are ignored: one environment file may serve every command.
// `-h` prints c's usage to stdout and returns errHelp.
func (c *command) parse(args []string, getenv func(string) string, stdout, stderr io.Writer) (*options, []string, error) {
	fs := flag.NewFlagSet("latchkey "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; help goes to stdout
	fs.Usage = func() {}
	o := &options{}
	for _, name := range c.flags {
		flagDefs[name].define(fs, o, name)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.printUsage(stdout, fs)
			return nil, nil, errHelp
		}
		c.printUsage(stderr, fs)
		return nil, nil, c.flagError(err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range c.flags {
		env := envName(name)
		v := getenv(env)
		if !flagDefs[name].env || set[name] || v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return nil, nil, usagef("%s=%q: %v", env, v, err)
		}
	}
	if err := o.finish(fs, getenv); err != nil {
		return nil, nil, err
	}
	if pos := fs.Args(); len(pos) != len(strings.Fields(c.args)) {
		if len(c.args) == 0 {
			return nil, nil, usagef("%s takes no arguments, got %q", c.name, pos)
		}
		return nil, nil, usagef("%s takes %d argument(s), %s, got %d (flags go before arguments)", c.name, len(strings.Fields(c.args)), c.args, len(pos))
	}
	return o, fs.Args(), nil
}

// flagError names the command and, for a flag it does not have, the commands
// that do.
func (c *command) flagError(err error) error {
	const undefined = "flag provided but not defined: -"
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, undefined)
	if !ok {
		return usagef("%s: %s", c.name, msg)
	}
	name = strings.TrimPrefix(name, "-") // -flag and --flag are the same
	var owners []string
	for _, o := range commands {
		if slices.Contains(o.flags, name) {
			owners = append(owners, o.name)
		}
	}
	if len(owners) == 0 {
		return usagef("%s: unknown flag --%s", c.name, name)
	}
	return usagef("%s does not take --%s (a flag of %s)", c.name, name, strings.Join(owners, ", "))
}

// printUsage prints c's usage and its flags, each with its environment
// variable.
func (c *command) printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: latchkey %s\n\n%s%s.\n", strings.TrimSpace(c.name+" [flags] "+c.args), strings.ToUpper(c.summary[:1]), c.summary[1:])
	if len(c.flags) == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	fs.VisitAll(func(f *flag.Flag) {
		typ, text := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if typ != "" {
			fmt.Fprintf(w, " %s", typ)
		}
		fmt.Fprintf(w, "\n        %s", text)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		if flagDefs[f.Name].env {
			fmt.Fprintf(w, " [$%s]", envName(f.Name))
		}
		fmt.Fprintln(w)
	})
	fmt.Fprintln(w, "\nThe deployment secret comes from LATCHKEY_SECRET (on SQLite, by default, from the\nfile PATH.secret beside the database).")
}

func envName(flagName string) string {
	if flagName == "provider" {
		return "LATCHKEY_PROVIDERS" // several, separated by ';'
	}
	return "LATCHKEY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
