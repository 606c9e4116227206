//! SIP: the platform side of GB/T 28181 signalling.
