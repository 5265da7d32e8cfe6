// Placeholder: the SwiftNIO server lands here.
