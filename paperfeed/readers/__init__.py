"""Readers: accounts, sign-in links, votes, the library, follows, saved searches and the
"For you" feed. No SQL here: everything is stored through ``paperfeed.store``."""
