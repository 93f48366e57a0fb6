"""Hand-written PyTorch twins of the zoo models in specs/zoo/.

Each module ``<stem>.py`` defines ``build() -> nn.Module`` and ``REFERENCE: int`` (the published
parameter count where there is one). A twin registers its parameters in the order nndsl's module
built from ``specs/zoo/<stem>.nn`` does, so that weights copy by position (tests/test_zoo.py).
README.md holds the draft spec of each twin whose spec needs language not yet in nndsl.
"""
