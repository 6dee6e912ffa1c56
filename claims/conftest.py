"""Claim tests share the session's model loads through headatlas.models (memoized)."""
