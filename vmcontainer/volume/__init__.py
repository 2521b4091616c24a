"""Host-side plumbing for volumes and mounts: named volumes as sparse ext4 disk
images (``store``, ``disk``) and the mount points of a create request
(``mounts``)."""
