"""The `kefu` command: wires the sub-commands of each package."""
