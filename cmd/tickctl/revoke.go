package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/tickwire/tickwire/internal/bus"
)

// revokeCmd stores a revocation in the list every feed replica watches (docs/OPERATIONS.md,
// "Revoking tokens"), or prints the list.
type revokeCmd struct {
	JTI      string        `name:"jti" placeholder:"ID" help:"Revoke the token with this jti, whenever it was issued."`
	Sub      string        `name:"sub" placeholder:"SUBJECT" help:"Revoke every token of this subject issued until now (tokens issued later work)."`
	Reason   string        `placeholder:"TEXT" help:"Why, for the list and the feeds' logs (never paste a token)."`
	List     bool          `help:"Print the revocations instead (oldest first)."`
	TTL      time.Duration `name:"ttl" default:"168h" help:"How long revocations are kept, if this command creates the bucket (the feeds' --revocation-ttl): at least the longest token lifetime you issue."`
	Replicas int           `default:"1" help:"Copies of the bucket on a NATS cluster (1..5), if this command creates it."`
	Timeout  time.Duration `default:"10s" help:"How long to wait for NATS's answer."`
}

func (c *revokeCmd) Help() string {
	return `Revokes a token (by its jti) or a subject's tokens (by sub) on every feed replica: connections using them are closed with 4006 within a second, and they are refused (401 "revoked") from then on. A subject revocation refuses the subject's tokens issued up to now, including this second: mint its new tokens from the next second on. Needs the tickctl or admin role.

Examples:
  tickctl revoke --jti 6f1c0a93e2b54d7a8c0e1f22 --reason "leaked in a support ticket"
  tickctl revoke --sub bot-7 --reason "contract ended"
  tickctl revoke --list
  tickctl unrevoke --sub bot-7`
}

func (c *revokeCmd) Run(e *env) error {
	kind, id, err := revocationTarget(c.JTI, c.Sub)
	switch {
	case c.List && (c.JTI != "" || c.Sub != "" || c.Reason != ""):
		return usageErr("--list takes no --jti, --sub or --reason")
	case !c.List && err != nil:
		return err
	case c.TTL <= 0:
		return usageErr("--ttl %v: must be positive", c.TTL)
	case c.Replicas < 1 || c.Replicas > 5:
		return usageErr("--replicas %d outside 1..5", c.Replicas)
	}
	b, err := e.connect()
	if err != nil {
		return err
	}
	defer closeBus(e, b)
	ctx, cancel := context.WithTimeout(e.ctx, c.Timeout)
	defer cancel()
	if c.List {
		list, err := b.Revocations(ctx)
		if err != nil {
			return fmt.Errorf("read the revocations: %w", err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tID\tREVOKED AT\tREASON")
		for _, r := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Kind, printable(r.ID), r.At.UTC().Format(time.RFC3339), printableText(r.Reason))
		}
		return tw.Flush()
	}
	r := bus.Revocation{Kind: kind, ID: id, At: e.now, Reason: c.Reason}
	if err := b.Revoke(ctx, bus.RevocationConfig{TTL: c.TTL, Replicas: c.Replicas}, r); err != nil {
		return fmt.Errorf("revoke (needs the tickctl or admin role): %w", err)
	}
	what := "token"
	if kind == bus.RevokeSubject {
		what = "tokens issued until " + r.At.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(e.stdout, "revoked %s %s (%s); feeds close their connections within a second\n", kind, printable(id), what)
	return nil
}

// unrevokeCmd removes a revocation.
type unrevokeCmd struct {
	JTI     string        `name:"jti" placeholder:"ID" help:"Take this jti off the list."`
	Sub     string        `name:"sub" placeholder:"SUBJECT" help:"Take this subject off the list."`
	Timeout time.Duration `default:"10s" help:"How long to wait for NATS's answer."`
}

func (c *unrevokeCmd) Help() string {
	return `Removes a revocation: the token (or the subject's tokens) is accepted again by every feed replica from the next connection on. Connections closed by the revocation stay closed. Fails when there was no such revocation (check the spelling with "tickctl revoke --list").

Examples:
  tickctl unrevoke --jti 6f1c0a93e2b54d7a8c0e1f22
  tickctl unrevoke --sub bot-7`
}

func (c *unrevokeCmd) Run(e *env) error {
	kind, id, err := revocationTarget(c.JTI, c.Sub)
	if err != nil {
		return err
	}
	b, err := e.connect()
	if err != nil {
		return err
	}
	defer closeBus(e, b)
	ctx, cancel := context.WithTimeout(e.ctx, c.Timeout)
	defer cancel()
	ok, err := b.Unrevoke(ctx, kind, id)
	if err != nil {
		return fmt.Errorf("unrevoke (needs the tickctl or admin role): %w", err)
	}
	if !ok {
		return fmt.Errorf("%s %s is not revoked", kind, printable(id))
	}
	fmt.Fprintf(e.stdout, "unrevoked %s %s\n", kind, printable(id))
	return nil
}

// revocationTarget checks that exactly one of --jti and --sub is given.
func revocationTarget(jti, sub string) (bus.RevocationKind, string, error) {
	var kind bus.RevocationKind
	var id string
	switch {
	case jti != "" && sub != "":
		return "", "", usageErr("give --jti or --sub, not both")
	case jti != "":
		kind, id = bus.RevokeJTI, jti
	case sub != "":
		kind, id = bus.RevokeSubject, sub
	default:
		return "", "", usageErr("give --jti ID or --sub SUBJECT")
	}
	if _, err := bus.RevocationKey(kind, id); err != nil {
		return "", "", usageErr("%v", err)
	}
	return kind, id, nil
}

// printable quotes an id when it holds spaces or control characters, so that one entry stays
// one line and one column.
func printable(s string) string {
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// printableText quotes a text (the last column: spaces are fine) that holds control characters.
func printableText(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
