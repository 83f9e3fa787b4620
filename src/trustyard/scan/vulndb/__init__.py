"""The local vulnerability store and the sources that feed it (OSV, the Debian tracker, Alpine's secdb).

Sources parse published advisory data into one typed model (``model``); ``ranges`` decides whether a
version is affected by OSV's rules; ``store`` keeps advisories in one SQLite file, imported incrementally.
"""
