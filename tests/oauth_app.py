"""The app registered with the Alpaca stand-in for Connect with Alpaca in the tests."""

CLIENT_ID, CLIENT_SECRET = "test-app", "test-client-secret-1"
REDIRECT = "http://127.0.0.1:5000/"
