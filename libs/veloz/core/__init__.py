"""The ground floor: errors, wire contracts, money, identity, the JSON codec, settings. No Flask,
no SQLAlchemy."""
