"""Who the peers are, pure: each controller's pod naming, derived from the pod's own facts."""
