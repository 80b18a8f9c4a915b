"""3D reconstruction in the camera frame: people (body model fitted to MediaPipe keypoints), objects (pose
from contacts, silhouette, depth), contacts on both, tracking ids and body TF frames."""
