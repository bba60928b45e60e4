"""Who may see what, and why: principals, roles, purposes of use, accounts, tokens, the gate."""
