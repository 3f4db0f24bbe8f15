"""Handling what comes from outside: untrusted bytes parsed without surprises, credentials kept
out of everything the project writes or prints."""
