"""Messaging: CommunicationRequest (the order to send) and Communication (what was sent)."""
