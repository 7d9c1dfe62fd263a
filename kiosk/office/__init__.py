"""The district office: open encounters and each encounter's record (sign-in required)."""
