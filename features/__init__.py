"""features: everything that knows data — readers, the one validation at the edge, the
dataset builder, Korean calendar features. Imports nothing from models/ or flows/."""
