// Command meshclient is the README's Go client: it calls a command, joins
// a room with a presence callback, receives a channel with history and
// follows a record in patch mode. Run examples/meshserver first.
//
//	go run ./examples/meshclient -url ws://localhost:8080/
package main

import (
	"context"
	"flag"
	"log"
	"time"

	"github.com/meshfast/meshfast/client"
)

func main() {
	url := flag.String("url", "ws://localhost:8080/", "server URL")
	run := flag.Duration("for", 10*time.Second, "how long to listen")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *run)
	defer cancel()

	c := client.New(*url, client.Options{}) // reconnects with backoff by itself
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	var greeting string
	if err := c.CommandInto(ctx, "greet", "ada", &greeting); err != nil {
		log.Fatal(err) // an error reply is a *protocol.CodeError
	}
	log.Println(greeting)

	// Join a room and watch who is in it.
	joined, _ := c.JoinRoom(ctx, "lobby", client.WithPresence(func(u client.PresenceUpdate) {
		log.Printf("%s %s", u.ConnectionID, u.Type) // join, leave, state
	}))
	log.Printf("present: %v", joined.Present)

	// Receive a channel, with the last 5 messages first.
	_, _ = c.SubscribeChannel(ctx, "news", func(msg string) { log.Println("news:", msg) },
		client.WithHistoryLimit(5))

	// Follow a record in patch mode: the callback gets the whole value after each patch.
	_, _ = c.SubscribeRecord(ctx, "doc:1", client.RecordPatch, func(u client.RecordUpdate) {
		log.Printf("doc:1 v%d = %s", u.Version, u.Value)
	})
	<-ctx.Done()
}
