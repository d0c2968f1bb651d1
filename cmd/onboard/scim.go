package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/onboard-dev/onboard/core/scim"
)

func scimCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "one JSON object per user instead of a table")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: onboard scim users [--json]

Lists the SCIM directory that Okta or Microsoft Entra ID keeps in onboard
(POST /scim/v2/Users...), from the store ONBOARD_STORE names (default
file:.onboard, what make run writes): each user's userName, whether the IdP
says they are active, their groups, and what onboard made of them: the email
and profile it provisioned (active) or deprovisioned, or "-" when it never
provisioned them (no profile lists their groups in scim_groups and there is
no default_profile, or the policy refused them: the log says which).

Examples:
  onboard scim users
  ONBOARD_STORE=firestore:my-project onboard scim users --json | jq .

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if rest := fs.Args(); len(rest) != 1 || rest[0] != "users" {
		fs.Usage()
		return 2
	}
	users, ok := readFromStore(stderr, "onboard scim users", "the directory", scim.Users)
	if !ok {
		return 1
	}
	if *asJSON {
		jsonLines(stdout, users)
		return 0
	}
	if len(users) == 0 {
		fmt.Fprintln(stderr, "onboard scim users: the directory is empty (no IdP has created a user yet)")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tID\tACTIVE\tGROUPS\tPROVISIONED AS\tPROFILE")
	for _, u := range users {
		as, profile := "-", "-"
		if p := u.Provisioned; p != nil {
			as, profile = p.Email, p.Profile
			if !p.Active {
				as += " (deprovisioned)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%s\t%s\n", u.UserName, u.ID, u.Active, cmp.Or(strings.Join(u.Groups, ", "), "-"), as, profile)
	}
	_ = tw.Flush()
	return 0
}
