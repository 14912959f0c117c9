"""Conversations: sessions, turns, handoffs, feedback and their storage."""
