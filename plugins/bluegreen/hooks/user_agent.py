"""Sent with every API request (both adapters and the BCS hook), so that the cluster's audit log
says which writes were bluegreen's."""

USER_AGENT = "bluegreen/0.1.0"
