"""Who is asking: enrolled kiosks, signed-in people, and the one place access is decided."""
