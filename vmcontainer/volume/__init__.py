"""Host-side plumbing for volumes and mounts: named volumes as sparse ext4 disk
images (``store``, ``disk``), the mount specifications of a create request
(``mounts``, ``parse``), and the guest's view of them (``guest``)."""
