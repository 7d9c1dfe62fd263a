"""The kiosk at a school's front desk."""
