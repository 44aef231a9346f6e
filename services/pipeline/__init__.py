"""The message pipeline (DESIGN.md "Platforms"): platform messages from the INBOUND work queue to
chat turns and built-in commands, replies back through the edge that holds the bot."""
