// Package browser holds the minimal browser example, index.html, and the test
// that runs it in headless Chromium.
package browser
