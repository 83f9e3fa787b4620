"""Access control: identities, projects, roles, robot accounts, tokens and audit (issue 3).

Being built in stages; nothing here is wired into ``trustyard serve`` yet.
"""
