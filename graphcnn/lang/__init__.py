"""The spec language: grammar, parser, AST, loader and interpreter (text -> IR)."""
