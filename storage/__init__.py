"""Storage: SQLAlchemy tables for the PRM model, engines, migrations, history and field crypto."""
