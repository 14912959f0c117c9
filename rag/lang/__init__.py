"""Languages: reply frames, language and country names, phrase lists (data files + Babel)."""
