"""Talking to Coze: the client, HTTP transport, pacing, the API base, and what replies prove."""
