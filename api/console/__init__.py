"""The web console (SPEC section 2, issue 16): server-rendered pages served by the
API process, for people signed in with a password rather than API keys.

Every figure on a page comes from the same repository and reporting functions as
the JSON API, and every scope check from `api.scope`, so the console can neither
show a different number nor a different enterprise than the API would.
"""
