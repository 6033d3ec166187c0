"""Slack: the notifier (one message per incident, symptoms in its thread), its Block Kit
messages, its settings, the interactive buttons and what was posted where."""
