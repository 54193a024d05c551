// Command go-grpc-floor is the bare gRPC transport of bench/_grpc_floor.py, written in Go.
//
// bench/floors.py runs it beside the Python one to answer a planning question of issue 16:
// would a data path in another language bring Write and Read under their CPU targets? It
// serves the two streaming methods of modelregistry.artifact.v1.ArtifactService with a codec
// that passes message bytes through untouched (no protobuf objects, no copies of its own):
//
//   - Read sends read_limit bytes as pre-framed 1 MiB ReadResponse messages;
//   - Write receives WriteRequest messages and, with -sha256, hashes every byte of them
//     (crypto/sha256, which uses the CPU's SHA instructions), then answers committed_size.
//
// Usage: go-grpc-floor [-sha256] PORT. It prints "ready" once it listens on 127.0.0.1:PORT.
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

const chunkSize = 1 << 20

// rawCodec hands gRPC the message bytes as they are, in both directions.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = data
	return nil
}

func (rawCodec) Name() string { return "proto" }

// readLimit returns field 3 (read_limit) of a ReadRequest.
func readLimit(msg []byte) (uint64, error) {
	var limit uint64
	for len(msg) > 0 {
		key, n := binary.Uvarint(msg)
		if n <= 0 {
			return 0, errors.New("bad ReadRequest")
		}
		msg = msg[n:]
		switch key & 7 {
		case 0:
			value, m := binary.Uvarint(msg)
			if m <= 0 {
				return 0, errors.New("bad ReadRequest")
			}
			if key>>3 == 3 {
				limit = value
			}
			msg = msg[m:]
		case 2:
			length, m := binary.Uvarint(msg)
			if m <= 0 || uint64(len(msg)-m) < length {
				return 0, errors.New("bad ReadRequest")
			}
			msg = msg[m+int(length):]
		default:
			return 0, errors.New("unexpected wire type in ReadRequest")
		}
	}
	return limit, nil
}

func main() {
	withSHA := flag.Bool("sha256", false, "hash every byte Write receives")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: go-grpc-floor [-sha256] PORT")
		os.Exit(2)
	}
	encoding.RegisterCodec(rawCodec{})

	chunk := make([]byte, chunkSize)
	if _, err := rand.Read(chunk); err != nil {
		panic(err)
	}
	// ReadResponse{data: chunk}: tag 0x0a, then the length as a varint, then the bytes.
	framed := binary.AppendUvarint([]byte{0x0a}, chunkSize)
	framed = append(framed, chunk...)

	read := func(_ any, stream grpc.ServerStream) error {
		var request []byte
		if err := stream.RecvMsg(&request); err != nil {
			return err
		}
		left, err := readLimit(request)
		if err != nil {
			return err
		}
		for ; left >= chunkSize; left -= chunkSize {
			if err := stream.SendMsg(&framed); err != nil {
				return err
			}
		}
		return nil
	}
	write := func(_ any, stream grpc.ServerStream) error {
		var hasher hash.Hash
		if *withSHA {
			hasher = sha256.New()
		}
		var received uint64
		for {
			var message []byte
			err := stream.RecvMsg(&message)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if hasher != nil {
				hasher.Write(message)
			}
			received += uint64(len(message))
		}
		// WriteResponse{committed_size: received}: tag 0x08, then the varint.
		reply := binary.AppendUvarint([]byte{0x08}, received)
		return stream.SendMsg(&reply)
	}

	server := grpc.NewServer(grpc.MaxRecvMsgSize(8 << 20))
	server.RegisterService(&grpc.ServiceDesc{
		ServiceName: "modelregistry.artifact.v1.ArtifactService",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{
			{StreamName: "Read", Handler: read, ServerStreams: true},
			{StreamName: "Write", Handler: write, ClientStreams: true},
		},
	}, struct{}{})
	listener, err := net.Listen("tcp", "127.0.0.1:"+flag.Arg(0))
	if err != nil {
		panic(err)
	}
	fmt.Println("ready")
	if err := server.Serve(listener); err != nil {
		panic(err)
	}
}
