"""Live harvesting: arXiv OAI-PMH (oai.py) and API (arxiv_api.py, ``fetch_ids``), Hugging Face
Daily Papers (hf.py), all through one polite client (http.py); ``paperfeed run`` schedules
them (scheduler.py). Parsing is left to ``paperfeed.sources``, storing to ``paperfeed.store``.
"""
