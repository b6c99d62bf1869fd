"""What victor's servers share: ``victor serve`` (HTTP, AG-UI) and ``victor mcp serve``
(MCP) both offer agents to other programs, so both need to know what they offer and who
may reach it.

- catalog.py: the agents and teams offered, by name, from an app file or from profiles.

Neither server imports the other for these; both import them from here.
"""
