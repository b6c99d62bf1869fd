"""The notebook as the agent's workspace: tools that see and change the kernel."""
