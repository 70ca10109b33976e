"""The web app: pages, JSON API and Atom feeds (``paperfeed.web.app.create_app``).

Kept empty on purpose: the CLI imports ``paperfeed.web.commands`` at every start, and
importing the app (FastAPI, Jinja2, the search engine) only when serving keeps other
commands quick.
"""
