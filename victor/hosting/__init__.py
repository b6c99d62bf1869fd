"""What victor's servers share: ``victor serve`` (HTTP, AG-UI) and ``victor mcp serve``
(MCP) both offer agents to other programs, so both need to know what they offer and who
may reach it.

- catalog.py: the agents and teams offered, by name, from an app file or from profiles.
- security.py: who may reach them: loopback only without an API token, and the ``Guard``
  in front of every route (token check, loopback rule, body-size limit).
- problem.py: how errors are answered (RFC 9457 problem details, secrets masked).

Neither server imports the other for these; both import them from here.
"""
