"""The relational store: models, engines, migrations and analytics SQL."""
