"""Registration: the activity catalogue, sign-ups and the people who sign up."""
